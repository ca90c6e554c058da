"""Reading data sources: local CSV/Parquet and a real S3 API (moto's server), with clear errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from mlspec.runtime import data

CHURN = Path(__file__).resolve().parents[2] / "data" / "churn" / "train.csv"


def test_local_csv_and_parquet_relative_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    df = pd.read_csv(CHURN).head(200)
    (tmp_path / "d").mkdir()
    df.to_csv(tmp_path / "d" / "x.csv", index=False)
    df.to_parquet(tmp_path / "d" / "x.parquet", index=False)
    monkeypatch.chdir(tmp_path)
    got_csv = data.read_source("d/x.csv", "csv")
    got_pq = data.read_source("d/x.parquet", "parquet")
    pd.testing.assert_frame_equal(got_csv, df)
    pd.testing.assert_frame_equal(got_pq, df)
    assert data.read_source("d/x.parquet", None).shape == df.shape  # format inferred from the suffix
    assert data.content_hash("d/x.csv") == hashlib.sha256((tmp_path / "d" / "x.csv").read_bytes()).hexdigest()


def test_missing_and_unreadable_sources_name_the_uri(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.csv")
    with pytest.raises(data.DataError, match=r"nope\.csv.*does not exist"):
        data.read_source(missing, "csv")
    with pytest.raises(data.DataError, match=r"nope\.csv"):
        data.content_hash(missing)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"this is not parquet")
    with pytest.raises(data.DataError, match=r"cannot read parquet data source .*bad\.parquet"):
        data.read_source(str(bad), "parquet")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(data.DataError, match="empty"):
        data.read_source(str(empty), "csv")
    with pytest.raises(data.DataError, match="unsupported format"):
        data.read_source(str(empty), "xlsx")


def test_sources_of_applies_overrides(churn_ir) -> None:
    got = data.sources_of(churn_ir, {"train": "s3://b/new.parquet", "reference": "s3://b/ref"})
    assert got["train"] == ("s3://b/new.parquet", "parquet")
    assert got["reference"] == ("s3://b/ref", "csv")  # no suffix: keeps the IR's format
    got = data.sources_of(churn_ir)
    assert got["reference"] == ("data/churn/reference.csv", "csv")


@pytest.mark.engine
def test_s3_csv_and_parquet_through_moto(aws_env: str) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=aws_env)
    s3.create_bucket(Bucket="mlspec-data")
    df = pd.read_csv(CHURN).head(500)
    data.write_frame(df, "s3://mlspec-data/churn/train.csv")
    data.write_frame(df, "s3://mlspec-data/churn/train.parquet")
    # objects really are in the S3 API, written by s3fs and listed by boto3
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="mlspec-data")["Contents"]}
    assert keys == {"churn/train.csv", "churn/train.parquet"}
    pd.testing.assert_frame_equal(data.read_source("s3://mlspec-data/churn/train.csv", "csv"), df)
    pd.testing.assert_frame_equal(data.read_source("s3://mlspec-data/churn/train.parquet", "parquet"), df)
    body = s3.get_object(Bucket="mlspec-data", Key="churn/train.csv")["Body"].read()
    assert data.content_hash("s3://mlspec-data/churn/train.csv") == hashlib.sha256(body).hexdigest()
    with pytest.raises(data.DataError, match=r"s3://mlspec-data/churn/missing\.csv.*does not exist"):
        data.read_source("s3://mlspec-data/churn/missing.csv", "csv")
