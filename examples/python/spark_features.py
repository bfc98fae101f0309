"""l-DAE features of a Parquet image dataset with Spark's mapInArrow (local mode).

    python examples/python/spark_features.py DATA.parquet RUN_DIR OUT_DIR

DATA.parquet: a file or folder with an `image` column (Hugging Face layout: a {bytes, path}
struct, or binary) and optionally `label`. RUN_DIR: an `ldae train` run; the encoder reads the
block, t and pooling the run records. Each Spark task hands its Arrow batches to the ldae
encoder (in Rust, the GIL released). Spark has no fixed-size-list type, so the features come
back as array<float>. Needs pyspark and Java 17.
"""

import sys

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import SparkSession

import ldae


def main():
    data, run, out = sys.argv[1:4]
    encoder = ldae.Encoder(run)
    spark = (SparkSession.builder.master("local[2]").appName("ldae-features")
             .config("spark.sql.execution.arrow.maxRecordsPerBatch", "256").getOrCreate())
    df = spark.read.parquet(data)

    def features(batches):
        for batch in batches:
            table = encoder(pa.Table.from_batches([batch]))
            feats = table["features"].combine_chunks()
            if hasattr(feats, "storage"):
                feats = feats.storage
            flat = feats.cast(pa.list_(pa.float32()))
            yield from pa.table({"id": table["id"], "label": table["label"], "features": flat,
                                 "error": table["error"]}).to_batches()

    schema = "id string, label long, features array<float>, error string"
    result = df.select("image", *(["label"] if "label" in df.columns else [])).mapInArrow(features, schema)
    result.write.mode("overwrite").parquet(out)
    written = spark.read.parquet(out)
    good = written.filter("error IS NULL")
    print(f"rows: {written.count()}, with features: {good.count()}, rejected: {written.count() - good.count()}")
    first = good.orderBy("id").first()
    print(f"first row: id={first['id']} label={first['label']} features[:4]={[round(x, 4) for x in first['features'][:4]]} (width {len(first['features'])})")
    spark.stop()


if __name__ == "__main__":
    main()
