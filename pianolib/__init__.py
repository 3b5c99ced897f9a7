"""pianolib: the thin library behind the notebooks, from a piano recording to a MIDI file.

One module per step of the pipeline (see README.md):

======================  ==============================================  ====================
module                  what it does                                    taught in notebook
======================  ==============================================  ====================
``config``              constants (16 kHz, hop 160, 264 bins), seeds    01
``audio``               load any audio at 16 kHz mono                   01
``features``            the CQT and its fixed-scale log compression     01
``midi``                MIDI <-> note lists, sustain pedal              01
``labels``              onset, length, velocity and pedal rolls         01, 07
``chunks``              fixed-length sequences                          01
``synth``, ``sources``  FluidSynth rendering; scores, MIDI, etudes      01
``augment``             tempo/key/velocity and room/microphone          01
``datasets``            build/split/load the local dataset              01
``maestro``             the real MAESTRO dataset                        01
``models``              CNN, RNN, LSTM, BiLSTM, CRNN; losses            02, 03, 07
``train``               fitting (4 models), streaming (stateful) layout 03, 04, 07
``decode``              onset + length (+ velocity, pedal) -> notes     05, 07
``transcribe``          audio file -> MIDI file                         05
``stream``              block-by-block audio, CQT and model windows     05
``export``/``runtime``  Keras -> ONNX, inference with ONNX Runtime      05
``batch``               many files per run, mirrored output names       05
``speed``               whole-process speed and memory                  06
``noteends``            note ends, velocity and pedal scores            06, 07
``evaluate``, ``tune``  mir_eval scores, decoder thresholds             05
``widgets``, ``plots``  listening widget, pictures                      01-05
``bench``               comparison with Basic Pitch                     06
======================  ==============================================  ====================
"""

import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter quiet


def _quiet_import_pretty_midi() -> None:
    """Import pretty_midi (and through it pyfluidsynth) without its print to standard output.

    pyfluidsynth >= 1.4 prints "'fluidsynth' was found at ..." on import whenever the ``CI``
    environment variable is set, which would mix a library line into our commands' output.
    """
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        import pretty_midi  # noqa: F401


_quiet_import_pretty_midi()

from .audio import load_audio, write_audio  # noqa: E402
from .chunks import make_chunks, unchunk
from .config import BINS_PER_OCTAVE, FPS, HOP_LENGTH, MIN_MIDI, N_BINS, N_KEYS, SR, set_seed
from .decode import decode_notes, decode_series
from .errors import PianolibError
from .features import compute_features, cqt, log_cqt, per_file_max_normalize
from .labels import notes_to_rolls
from .midi import midi_to_notes, notes_to_midi, write_midi

__all__ = [
    "BINS_PER_OCTAVE", "FPS", "HOP_LENGTH", "MIN_MIDI", "N_BINS", "N_KEYS", "SR",
    "PianolibError", "compute_features", "cqt", "decode_notes", "decode_series", "load_audio",
    "log_cqt", "make_chunks", "midi_to_notes", "notes_to_midi", "notes_to_rolls",
    "per_file_max_normalize", "set_seed", "unchunk", "write_audio", "write_midi",
]
__version__ = "0.1.0"
