"""The teacher: an OpenAI-compatible client with a response cache, prompt templates, and a
local stand-in server whose rule generators answer the templates offline (see docs/forge.md)."""

from .client import Completion, ResponseCache, TeacherClient, TeacherError, cache_key
from .templates import PLACEHOLDERS, Template, TemplateError, load_template

__all__ = ["TeacherClient", "TeacherError", "Completion", "ResponseCache", "cache_key", "Template",
           "TemplateError", "load_template", "PLACEHOLDERS"]
