"""results/segmentation.md: output-stride variants beside the plain model, from records only."""
from pathlib import Path

from common.render import segmentation


def _rec(model, os_, ms, kind="timing", date="2026-12-01T00:00:00+00:00", superseded=None, **req):
    request = {"kind": kind, "model": model, "input": {"name": "cityscapes", "batch": 1}, "clock": "cuda-event",
               "precision": "fp32", "channels_last": False, "cudnn_benchmark": False, "cuda_graph": False, "compile": None,
               "depth": 1, "variant": "",
               "search": "as-given", "output_stride": os_, "features": False, **req}
    result = {"timing": {"stats": {"median_ms": ms}, "warmup": 25, "iters": 300}, "repeats": {"median_of_medians_ms": ms, "spread": 0.01},
              "cost": {"flops": 2e11 * 32 / os_, "params": 25.6e6}}
    return {"kind": kind, "device_tag": "gpu", "request": request, "env": {"date": date, "device_type": "cuda"},
            "result": result, "superseded": superseded, "_path": f"/r/{model}_{os_}_{kind}_{date}.json"}


def test_variants_sit_beside_the_plain_model_newest_current_record_wins():
    recs = [_rec("resnet50", 32, 10.0), _rec("resnet50", 16, 20.0), _rec("resnet50", 8, 50.0),
            _rec("resnet50", 8, 99.0, date="2026-12-02T00:00:00+00:00", superseded="stale"),
            _rec("resnet50", 8, 40.0, date="2026-11-30T00:00:00+00:00"),
            _rec("resnet18", 32, 3.0),  # no dilated variant: not on the page
            _rec("resnet50", 8, 1.0, precision="bf16", variant="bf16")]  # not eager fp32
    text = segmentation.markdown(recs, Path("/r"), Path("/r/results"))
    rows = [ln for ln in text.splitlines() if ln.startswith("| resnet")]
    assert [r.split("|")[2].strip() for r in rows] == ["32", "16", "8"]
    assert [r.split("|")[3].strip() for r in rows] == ["10.00", "20.00", "50.00"]
    assert "resnet18" not in text and "## gpu, cityscapes" in text


def test_no_variant_records_says_how_to_make_them():
    assert "--output-stride" in segmentation.markdown([_rec("resnet50", 32, 10.0)], Path("/r"), Path("/r/results"))
