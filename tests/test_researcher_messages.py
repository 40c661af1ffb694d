"""The three messages a researcher with the licensed corpora met (issue 46): notebook 01's spectrogram
cell names a digitally silent file; MSP-IMPROV turns without ratings give one warning with the count;
a notebook kernel is shut down without the SIGINT that made ipykernel log a KeyboardInterrupt."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serlib.analysis import data_overview
from serlib.app import reproduce
from serlib.base import config as config_module
from serlib.data import audio, loaders


def test_the_spectrogram_cell_names_the_silent_file() -> None:
    config = config_module.load_preset("demo")
    silent = np.zeros(16000, dtype=np.float32)
    with pytest.raises(audio.AudioError, match=r"/corpus/Ses01F_silent\.wav: signal is digitally silent"):
        data_overview.plot_features(silent, 16000, config, source="/corpus/Ses01F_silent.wav")
    with pytest.raises(
        audio.AudioError, match="^signal is digitally silent"
    ):  # no file: the message as before
        data_overview.plot_features(silent, 16000, config)


def _msp_tree(root: Path, ratings: list[tuple[str, str]]) -> Path:
    names = ["S01A-F01-S-FM01", "S01H-M01-P-MF02", "S02N-F03-R-FM01", "S03S-M06-T-MF03"]
    blocks = []
    for name, (arousal, valence) in zip(names, ratings, strict=True):
        label = name[3]
        blocks.append(f"UTD-IMPROV-{name}.avi; {label}; A:{arousal}; V:{valence}; D:3.0 ; N:3.0;\n\n")
        sf.write(root / f"MSP-IMPROV-{name}.wav", np.full(800, 0.1, dtype=np.float32), 16000)
    (root / "Evalution.txt").write_text("".join(blocks))
    return root


def test_missing_msp_improv_ratings_give_one_warning_with_the_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = _msp_tree(tmp_path, [("4.2", "1.8"), ("NaN", "NaN"), ("", ""), ("2.0", "")])
    with caplog.at_level(logging.WARNING):
        manifest = loaders.load("msp_improv", root)
    warnings = [r.getMessage() for r in caplog.records if "rating" in r.getMessage()]
    assert len(warnings) == 1 and "3 of 4 labeled turns have no arousal or valence rating" in warnings[0]
    assert "is NaN here" not in warnings[0]  # one turn is rated, so its UAR is defined
    assert manifest["arousal_class"].tolist() == ["high", "", "", "low"]
    caplog.clear()
    root = _msp_tree(tmp_path, [("NaN", "NaN")] * 4)
    with caplog.at_level(logging.WARNING):
        loaders.load("msp_improv", root)
    assert "4 of 4 labeled turns" in caplog.text and "is NaN here" in caplog.text


def _signals_at_shutdown(manager_class: type) -> list[int]:
    sent: list[int] = []

    async def run() -> None:
        manager = manager_class(kernel_name=reproduce.kernel_name())
        original = manager._async_signal_kernel

        async def record(signum: int) -> None:
            sent.append(signum)
            await original(signum)

        manager._async_signal_kernel = record
        await manager.start_kernel()
        client = manager.client()
        client.start_channels()
        await client.wait_for_ready(timeout=120)
        client.stop_channels()
        await manager.shutdown_kernel(now=False)

    asyncio.run(run())
    return sent


def test_kernels_are_shut_down_without_an_interrupt(tmp_path: Path) -> None:
    """jupyter_client interrupts (SIGINT) before every shutdown: the cause of ipykernel's
    "KeyboardInterrupt caught in kernel." line at the end of a papermill run. serlib's manager does not."""
    from jupyter_client import AsyncKernelManager  # noqa: PLC0415

    assert signal.SIGINT in _signals_at_shutdown(AsyncKernelManager)
    assert _signals_at_shutdown(reproduce.ipc_kernel_manager(tmp_path)) == []
