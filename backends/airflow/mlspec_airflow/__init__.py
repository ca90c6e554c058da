"""mlspec's Airflow backend: the IR as Airflow 3 DAG files (KubernetesPodOperator or local execution)."""

from mlspec_airflow.backend import AirflowBackend

__all__ = ["AirflowBackend"]
