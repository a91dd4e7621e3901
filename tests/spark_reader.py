"""Reads an archive's Parquet files with Apache Spark (pyspark, local mode),
as a Spark user without strata would: every file, columns merged by name.

usage: spark_reader.py ARCHIVE

Prints one JSON object: "types" (each column's Spark SQL type), "rows", the
sums of "bytes" and "records", and "attributes": every attribute as sorted
[event_id, key, value] triples, from the `attrs` map and the shredded
`attrs__<key>` columns.
"""

import json
import os
import sys

from pyspark.sql import SparkSession

root = os.path.abspath(sys.argv[1])
spark = (
    SparkSession.builder.master("local[2]")
    .appName("strata-spark-reader")
    .config("spark.ui.enabled", "false")
    .config("spark.sql.session.timeZone", "UTC")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("ERROR")
# The files carry tenant and family themselves; paths are not read as partitions.
frame = (
    spark.read.option("recursiveFileLookup", "true")
    .option("mergeSchema", "true")
    .option("pathGlobFilter", "*.parquet")
    .parquet(root)
)
frame.createOrReplaceTempView("events")
shredded = [c for c in frame.columns if c.startswith("attrs__")]
parts = ["SELECT event_id, key, value FROM events LATERAL VIEW explode(attrs) AS key, value"]
parts += [
    f"SELECT event_id, '{c[len('attrs__'):]}', `{c}` FROM events WHERE `{c}` IS NOT NULL"
    for c in shredded
]
triples = spark.sql(" UNION ALL ".join(parts)).collect()
totals = spark.sql("SELECT count(*), sum(bytes), sum(records) FROM events").collect()[0]
json.dump(
    {
        "types": {f.name: f.dataType.simpleString() for f in frame.schema.fields},
        "rows": totals[0],
        "bytes": totals[1],
        "records": totals[2],
        "attributes": sorted([list(t) for t in triples]),
    },
    sys.stdout,
)
spark.stop()
