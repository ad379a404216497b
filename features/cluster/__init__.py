"""The lake beyond one machine: servers the cluster setup runs, started by the project.

- :mod:`features.cluster.standalone`: a Spark standalone cluster (a master and workers
  started with ``spark-class`` from the installed pyspark);
- :mod:`features.cluster.postgres`: a PostgreSQL server for the shared Hive metastore and
  Feast's SQL registry; :mod:`features.cluster.metastore` makes the metastore's schema in it;
- :mod:`features.cluster.redis`: a Redis server, Feast's online store;
- :mod:`features.cluster.daemons`: spawning, waiting for and stopping background servers;
- :mod:`features.cluster.stack`: all of them at once, and the environment that points the
  lake's processes at them (``features cluster up``).

The lake's code is the same on the cluster as on the embedded default: only the settings
of :func:`features.lakehouse.spark_conf` and Feast's ``feature_store.yaml`` differ.
"""
