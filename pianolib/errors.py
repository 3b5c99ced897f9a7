"""Errors with messages a learner can act on."""


class PianolibError(Exception):
    """An error about the user's input or environment; the message says what to do."""


class AudioError(PianolibError):
    """An audio file that cannot be read."""


class MidiError(PianolibError):
    """A MIDI file that cannot be read."""


class SynthError(PianolibError):
    """FluidSynth or a soundfont is missing."""
