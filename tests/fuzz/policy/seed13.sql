SELECT c.ssn, row_to_json(c), (c).email FROM customers c(a, b) JOIN orders USING (ssn) NATURAL JOIN x, generate_series(1, 2) g WHERE ssn LIKE '1%' ORDER BY 2
