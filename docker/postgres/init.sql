-- One server, two databases: Dagster's run/event/schedule storage and MLflow's backend store.
CREATE DATABASE dagster;
CREATE DATABASE mlflow;
