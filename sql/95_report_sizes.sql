-- Step: the report's histogram of persons by size (report.html, "Persons by size").
-- Inputs: persons (70_persons.sql)
-- Output: one row per person size: identifier_count, persons; ascending size.
-- Invariants: sum(persons) = number of persons = rows of users. Computed in the engine while
--             persons is in memory, instead of reading users back from the written files.
SELECT identifier_count, count(*) AS persons
FROM persons
GROUP BY identifier_count
ORDER BY identifier_count
