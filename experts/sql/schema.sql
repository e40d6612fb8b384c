-- The school database the sql expert writes queries for (SQLite). Also the evaluation database:
-- gold and predicted queries both run on these rows.
CREATE TABLE students (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  city TEXT,
  age INTEGER
);
CREATE TABLE teachers (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  department TEXT,
  salary INTEGER
);
CREATE TABLE courses (
  id INTEGER PRIMARY KEY,
  title TEXT NOT NULL,
  department TEXT,
  credits INTEGER,
  teacher_id INTEGER REFERENCES teachers(id)
);
CREATE TABLE enrollments (
  id INTEGER PRIMARY KEY,
  student_id INTEGER REFERENCES students(id),
  course_id INTEGER REFERENCES courses(id),
  grade INTEGER
);
INSERT INTO students (id, name, city, age) VALUES
  (1, 'Anna', 'Lima', 19), (2, 'Ben', 'Oslo', 22), (3, 'Carla', 'Porto', 20), (4, 'David', 'Lima', 24),
  (5, 'Elena', 'Dublin', 21), (6, 'Farid', 'Cairo', 23), (7, 'Grace', 'Oslo', 19), (8, 'Hiro', 'Osaka', 25),
  (9, 'Ines', 'Porto', 22), (10, 'Jonas', 'Dublin', 20), (11, 'Kofi', 'Accra', 21), (12, 'Lena', 'Cairo', 26);
INSERT INTO teachers (id, name, department, salary) VALUES
  (1, 'Mr Rossi', 'Math', 4200), (2, 'Ms Okafor', 'Physics', 4500), (3, 'Dr Weber', 'History', 3900),
  (4, 'Ms Tanaka', 'Biology', 4100), (5, 'Mr Silva', 'Art', 3600), (6, 'Dr Haddad', 'Math', 4800);
INSERT INTO courses (id, title, department, credits, teacher_id) VALUES
  (1, 'Algebra', 'Math', 5, 1), (2, 'Geometry', 'Math', 4, 6), (3, 'Mechanics', 'Physics', 6, 2),
  (4, 'Optics', 'Physics', 3, 2), (5, 'Ancient Rome', 'History', 4, 3), (6, 'Genetics', 'Biology', 5, 4),
  (7, 'Painting', 'Art', 2, 5), (8, 'Statistics', 'Math', 3, 6);
INSERT INTO enrollments (id, student_id, course_id, grade) VALUES
  (1, 1, 1, 88), (2, 1, 6, 92), (3, 2, 3, 75), (4, 3, 5, 81), (5, 4, 2, 67), (6, 5, 7, 95),
  (7, 6, 4, 72), (8, 7, 1, 90), (9, 8, 8, 84), (10, 9, 6, 78), (11, 10, 3, 69), (12, 11, 5, 93),
  (13, 12, 2, 86), (14, 3, 7, 74), (15, 5, 1, 80), (16, 8, 3, 91);
