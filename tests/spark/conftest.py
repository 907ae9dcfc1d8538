"""One Spark local-mode session for every Spark test (`local[2]`, the CI machine's cores).

Starting a JVM costs seconds, so the session is created once per test session.
Settings keep a small roster's run short: 4 shuffle partitions instead of 200,
no UI, no console progress bar; Python workers run this interpreter (the
project's virtualenv). pyspark and Java are requirements of these tests, not
options: a missing one is an error here, never a skip (`.ci/run` installs both).
"""

from __future__ import annotations

import os
import sys

import pytest
from pyspark.sql import SparkSession


@pytest.fixture(scope="session")
def spark():
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("raf-service tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "2")
        .config("spark.driver.memory", "1g")
        # one polars thread per Spark task: local[2] runs two tasks on two cores
        .config("spark.executorEnv.POLARS_MAX_THREADS", "1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
