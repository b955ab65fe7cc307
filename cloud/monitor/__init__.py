"""Model monitoring in the cloud: drift checks on the prediction log, metrics, alerts, reports."""
