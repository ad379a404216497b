"""Feature services: the versioned feature sets models train and score on."""

from feast import FeatureService

from feature_views import customer_billing, customer_support, customer_usage

churn_v1 = FeatureService(
    name="churn_v1",
    features=[customer_usage, customer_billing, customer_support],
    description="Usage, billing and support features of the churn and invoice models.",
)
