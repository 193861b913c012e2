"""The auditors' and administrators' read-only web view (FastAPI; `overstap web`, or mounted in
Airflow's api-server by plugins/overstap_auditor.py)."""
