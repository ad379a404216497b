"""Model building on the lakehouse: MLlib pipelines, tuning, evaluation, persistence."""
