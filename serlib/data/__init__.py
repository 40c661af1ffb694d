"""The data layer: audio files, the manifest format, one loader per corpus, the demo corpus, downloads."""
