-- An officer token may name the officer (转办 hands a task to one officer of a department).
ALTER TABLE tokens ADD COLUMN officer TEXT;
