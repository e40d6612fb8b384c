// The movie graph the cypher expert writes queries for (Neo4j Cypher).
(:Person {name: STRING, born: INTEGER})
(:Movie {title: STRING, released: INTEGER, rating: INTEGER})
(:Genre {name: STRING})
(:Person)-[:ACTED_IN]->(:Movie)
(:Person)-[:DIRECTED]->(:Movie)
(:Movie)-[:IN_GENRE]->(:Genre)
// Values in the graph (the teacher draws its questions from these):
Person.name: Tom Hanks, Meg Ryan, Keanu Reeves, Carrie Fisher, Nora Ephron, Ron Howard, Lana Wachowski, Rob Reiner, Emma Stone, Greta Gerwig
Person.born: 1956, 1961, 1964, 1941, 1954, 1965, 1947, 1988, 1983
Movie.title: The Matrix, Sleepless in Seattle, Apollo 13, Cast Away, When Harry Met Sally, Little Women, La La Land, Barbie, Star Wars, Splash
Movie.released: 1999, 1993, 1995, 2000, 1989, 2019, 2016, 2023, 1977, 1984
Movie.rating: 9, 7, 8, 6, 5, 4
Genre.name: Drama, Comedy, Romance, Science Fiction, Musical, Adventure
