// The movie graph the cypher expert writes queries for (Neo4j Cypher).
(:Person {name: STRING, born: INTEGER})
(:Movie {title: STRING, released: INTEGER, rating: INTEGER})
(:Genre {name: STRING})
(:Person)-[:ACTED_IN]->(:Movie)
(:Person)-[:DIRECTED]->(:Movie)
(:Movie)-[:IN_GENRE]->(:Genre)
