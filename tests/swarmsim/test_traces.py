"""Trace readers: the real Azure LLM 2023 files, every format in miniature, every bad row."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from swarmsim.errors import TraceError
from swarmsim.traces import read_azure_llm, read_csv, read_jsonl, read_trace

SHARED = Path(os.environ.get("SWARMSIM_SHARED", Path(__file__).parents[3] / "shared"))
AZURE = SHARED / "traces" / "azure_llm_2023"
needs_azure = pytest.mark.skipif(not AZURE.is_dir(), reason=f"no shared traces at {AZURE}")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@needs_azure
def test_conv_trace_matches_the_readme_table():
    table = read_azure_llm(AZURE / "AzureLLMInferenceTrace_conv.csv")
    assert len(table) == 19_366
    assert np.median(table.input_tokens) == 1020
    assert np.median(table.output_tokens) == 129
    assert table.t[0] == 0.0 and np.all(np.diff(table.t) >= 0)
    # 18:15:50.9951690 - 18:15:46.6805900, exact to the 100 ns of the file
    assert table.t[1] == 4.314579
    assert 3000 < table.duration_s < 3600  # "about 1 h"
    assert table.input_tokens.dtype == np.int64 and table.t.dtype == np.float64


@needs_azure
def test_code_trace_and_auto_detection():
    path = AZURE / "AzureLLMInferenceTrace_code.csv"
    table = read_trace(path)
    assert len(table) == 8_819
    assert (np.median(table.input_tokens), np.median(table.output_tokens)) == (1469, 13)
    azure = read_azure_llm(path)
    assert np.array_equal(table.t, azure.t)
    assert np.array_equal(table.output_tokens, azure.output_tokens)


def test_datetimes_parse_exactly_to_100_ns(tmp_path):
    text = (
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:17:03.9799600,10,1\n"
        "2023-11-16 18:17:04.0000001,20,2\n"
        "2023-11-17T18:17:03.9799600,30,3\n"
    )
    table = read_trace(write(tmp_path, "a.csv", text))
    assert table.t.tolist() == [0.0, 0.0200401, 86400.0]
    assert table.input_tokens.tolist() == [10, 20, 30]


def test_utc_offsets_are_applied(tmp_path):
    text = "t,input_tokens,output_tokens\n2024-01-01T12:00:00Z,1,1\n2024-01-01T12:30:00+01:00,1,1\n"
    table = read_csv(write(tmp_path, "a.csv", text))
    assert table.t.tolist() == [0.0, 1800.0]  # 11:30 UTC comes first


@pytest.mark.parametrize(
    "header",
    [
        "arrived_at,num_prefill_tokens,num_decode_tokens",
        "arrival_timestamp,prompt_size,token_size",
        "ARRIVAL_TIME,Prompt_Tokens,Completion_Tokens",
    ],
)
def test_csv_recognises_common_column_names(tmp_path, header):
    path = write(tmp_path, "trace.csv", f"id,{header}\na,10.5,100,7\nb,11.25,200,8\n")
    table = read_trace(path)
    assert table.t.tolist() == [0.0, 0.75]
    assert table.input_tokens.tolist() == [100, 200]
    assert table.output_tokens.tolist() == [7, 8]


def test_csv_column_mapping_and_partial_mapping(tmp_path):
    path = write(tmp_path, "x.txt", "when,prompt,answer,output_tokens\n3,5,6,60\n1,7,8,80\n")
    mapping = {"timestamp": "when", "input_tokens": "prompt", "output_tokens": "answer"}
    full = read_trace(path, columns=mapping)
    assert full.output_tokens.tolist() == [8, 6]  # sorted by time
    partial = read_csv(path, {"timestamp": "when", "input_tokens": "prompt"})
    assert partial.output_tokens.tolist() == [80, 60]  # output_tokens recognised by name


def test_out_of_order_rows_are_sorted_stably(tmp_path):
    text = "t,input_tokens,output_tokens\n5,1,0\n1,2,0\n5,3,0\n0,4,0\n"
    table = read_csv(write(tmp_path, "a.csv", text))
    assert table.t.tolist() == [0.0, 1.0, 5.0, 5.0]
    assert table.input_tokens.tolist() == [4, 2, 1, 3]


def test_jsonl_with_numbers_strings_and_blank_lines(tmp_path):
    text = (
        '{"timestamp": "2024-05-01T00:00:01.5", "prompt_tokens": 12, "completion_tokens": "3"}\n'
        "\n"
        '{"timestamp": "2024-05-01T00:00:00", "prompt_tokens": "40", "completion_tokens": 5.0}\n'
    )
    table = read_trace(write(tmp_path, "requests.jsonl", text))
    assert table.t.tolist() == [0.0, 1.5]
    assert table.input_tokens.tolist() == [40, 12]
    assert table.output_tokens.tolist() == [5, 3]
    other = write(tmp_path, "r.log", '{"a": 2, "b": 1, "c": 9}\n{"a": 4, "b": 2, "c": 8}\n')
    mapped = read_jsonl(other, {"timestamp": "a", "input_tokens": "b", "output_tokens": "c"})
    assert mapped.t.tolist() == [0.0, 2.0] and mapped.output_tokens.tolist() == [9, 8]


def test_auto_detects_jsonl_by_content_and_reads_gzip(tmp_path):
    path = tmp_path / "trace.gz"
    with gzip.open(path, "wt") as f:
        f.write('{"t": 0, "input_tokens": 1, "output_tokens": 2}\n')
        f.write('{"t": 2, "input_tokens": 3, "output_tokens": 4}\n')
    assert read_trace(path).input_tokens.tolist() == [1, 3]


def test_window_scaled_duration_and_rate(tmp_path):
    rows = "".join(f"{t},{t * 10},{t}\n" for t in range(10))
    table = read_csv(write(tmp_path, "a.csv", "t,input_tokens,output_tokens\n" + rows))
    assert table.duration_s == 9.0 and table.mean_rate == pytest.approx(10 / 9)
    window = table.window(2.5, 6.0)
    assert window.t.tolist() == [0.5, 1.5, 2.5]
    assert window.input_tokens.tolist() == [30, 40, 50]
    assert table.window(3.0, 5.0).t.tolist() == [0.0, 1.0]  # start inclusive, end exclusive
    assert len(table.window(7.0)) == 3 and len(table.window(20.0)) == 0
    assert table.scaled(0.5).t.tolist() == [t / 2 for t in range(10)]
    assert table.scaled(0.5).duration_s == 4.5


def test_rate_scale_thins_and_repeats_at_the_same_times(tmp_path):
    rows = "".join(f"{t},{t * 10},{t}\n" for t in range(10))
    table = read_csv(write(tmp_path, "a.csv", "t,input_tokens,output_tokens\n" + rows))
    assert table.rate_scaled(1.0).t.tolist() == table.t.tolist()
    half = table.rate_scaled(0.5)
    assert half.t.tolist() == [1.0, 3.0, 5.0, 7.0, 9.0]  # every other row, evenly
    assert half.input_tokens.tolist() == [10, 30, 50, 70, 90]
    assert table.rate_scaled(2.0).t.tolist() == [t for t in range(10) for _ in (0, 1)]
    assert len(table.rate_scaled(0.25)) == 2 and len(table.rate_scaled(1.5)) == 15


HEADER = "t,input_tokens,output_tokens\n"
DATE_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
BAD_FILES = [
    # (name, text, line, words the message must contain)
    ("a.csv", "", None, "empty file"),
    ("a.csv", HEADER, None, "no data rows"),
    ("a.csv", "time,in,out\n1,2,3\n", 1, "no timestamp column"),
    ("a.csv", "t,in,output_tokens\n1,2,3\n", 1, "present: t, in, output_tokens"),
    ("a.csv", HEADER + "1,2,3\n2,lots,3\n", 3, "input token count 'lots' is not a number"),
    ("a.csv", HEADER + "1,2,3\n\n2,3,4\n3,4,-5\n", 5, "output token count '-5' is not a non-neg"),
    ("a.csv", HEADER.replace("\n", "\r\n") + "1,2,3\r\n\r\n2,x,3\r\n", 4, "'x' is not a"),
    ("a.csv", HEADER + "1,2.5,3\n", 2, "'2.5' is not a non-negative integer"),
    ("a.csv", HEADER + "1,nan,3\n", 2, "'nan' is not finite"),
    ("a.csv", HEADER + "1,2,3\n2,3\n", 3, "expected 3 fields"),
    ("a.csv", HEADER + "1,2,3\nsoon,2,3\n", 3, "timestamp 'soon' is not a number"),
    ("a.csv", DATE_HEADER + "2023-11-16 18:17:03.1,2,3\nlater,2,3\n", 3, "unparseable timestamp"),
    ("a.csv", DATE_HEADER + "2023-11-16 18:17:03.1,2,3\n,2,3\n", 3, "unparseable timestamp ''"),
    ("a.jsonl", '{"t": 1, "input_tokens": 2, "output_tokens": 3}\n{"t": 2,\n', 2, "invalid JSON"),
    ("a.jsonl", "[1, 2, 3]\n", 1, "expected a JSON object"),
    ("a.jsonl", '{"t": 1, "input_tokens": 2, "output_tokens": 3}\n\n{"t": 2}\n', 3, "missing key"),
    ("a.jsonl", '{"t": 1, "input_tokens": null, "output_tokens": 3}\n', 1, "None is not a number"),
    ("a.jsonl", '{"t": 1, "input_tokens": 2}\n', 1, "no output_tokens column"),
]


@pytest.mark.parametrize(("name", "text", "line", "words"), BAD_FILES)
def test_bad_files_name_the_file_and_line(tmp_path, name, text, line, words):
    path = write(tmp_path, name, text)
    with pytest.raises(TraceError) as caught:
        read_trace(path)
    assert caught.value.path == str(path)
    assert caught.value.line == line
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"{path}:{line}:" if line else f"{path}:")


def test_azure_format_requires_its_columns(tmp_path):
    path = write(tmp_path, "a.csv", HEADER + "1,2,3\n")
    with pytest.raises(TraceError, match=r"no timestamp column \(looked for TIMESTAMP\)"):
        read_trace(path, format="azure-llm")


def test_unknown_format_and_unknown_column_field(tmp_path):
    path = write(tmp_path, "a.csv", HEADER + "1,2,3\n")
    with pytest.raises(TraceError, match="unknown trace format 'parquet'"):
        read_trace(path, format="parquet")
    with pytest.raises(TraceError, match=r"unknown fields \['tokens'\]"):
        read_csv(path, {"tokens": "input_tokens"})
