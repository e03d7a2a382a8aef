"""Readers for Darknet's text files: `.cfg` (:mod:`.cfg`), `.data`/`.names` (:mod:`.data`)."""
