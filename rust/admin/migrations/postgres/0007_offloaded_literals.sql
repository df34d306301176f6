-- Literal maps too large to keep in a row live in object storage; the row keeps their URI and an
-- empty bytes column. '' means the data is inline (or there is none). On node and task executions
-- these are beside input_uri, which is where the propeller wrote the inputs the event announced.
ALTER TABLE executions ADD COLUMN inputs_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE executions ADD COLUMN user_inputs_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE executions ADD COLUMN outputs_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE node_executions ADD COLUMN inputs_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE node_executions ADD COLUMN outputs_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE task_executions ADD COLUMN inputs_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE task_executions ADD COLUMN outputs_uri TEXT NOT NULL DEFAULT '';
