"""Every notebook runs end to end in smoke mode (papermill), writing only to a temporary folder."""
import math
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

EXPECTED_SCALARS = {
    "MSE_Colorizer.ipynb": {"mse/train_mse", "mse/validation_mse"},
    "GAN_Colorizer.ipynb": {"gan/disc_loss", "gan/gen_adv_loss", "gan/gen_mse_loss",
                            "gan/gen_total_loss", "gan/validation_mse"},
    "Video_Colorizer.ipynb": {"gan/disc_loss", "gan/gen_adv_loss", "gan/gen_mse_loss",
                              "gan/gen_total_loss", "gan/validation_mse"},
}


def _shipped_state():
    """Modification times of everything under resources/ that a real run writes."""
    paths = [p for d in ("models", "logs", "video", "figures") for p in (ROOT / "resources" / d).rglob("*")]
    return {str(p): p.stat().st_mtime_ns for p in paths if p.is_file()}


def run_smoke(notebook, tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    monkeypatch.setenv("COLORIZER_SMOKE", "1")
    monkeypatch.setenv("COLORIZER_SMOKE_DIR", str(tmp_path / "run"))
    before = _shipped_state()
    papermill.execute_notebook(str(ROOT / notebook), str(tmp_path / notebook), cwd=str(ROOT),
                               kernel_name="python3", progress_bar=False)
    assert _shipped_state() == before, "a smoke run wrote over shipped files"
    return tmp_path / "run"


@pytest.mark.parametrize("notebook", sorted(EXPECTED_SCALARS))
def test_training_notebook_smoke(notebook, tmp_path, monkeypatch):
    if not (ROOT / notebook).exists():
        pytest.skip(f"{notebook} not written yet")
    import colorizerutils as cu
    run_dir = run_smoke(notebook, tmp_path, monkeypatch)
    assert list((run_dir / "checkpoints").glob("ckpt-*.index")), "no checkpoint written"
    assert (run_dir / "generator.weights.h5").is_file()
    scalars = cu.read_scalars(run_dir / "tensorboard" / "scalars")
    assert EXPECTED_SCALARS[notebook] <= set(scalars), set(scalars)
    for tag in EXPECTED_SCALARS[notebook]:
        steps, values = scalars[tag]
        assert len(values) > 0 and all(math.isfinite(v) for v in values), tag


def test_analysis_notebook_smoke(tmp_path, monkeypatch):
    if not (ROOT / "Colorizer_Analysis.ipynb").exists():
        pytest.skip("Colorizer_Analysis.ipynb not written yet")
    run_smoke("Colorizer_Analysis.ipynb", tmp_path, monkeypatch)
