WITH q AS (SELECT * FROM customers) SELECT * FROM q UNION SELECT * FROM f(); COPY customers (id, ssn) TO STDOUT; PREPARE p AS SELECT ssn FROM customers
