"""Preloaded first by the augmentation's fork server (and imported nowhere else): ties the server's life to the
process that started it, so a ``kill -9`` of ``genrelib augment`` takes the server, and with it every worker (each
worker ties itself to the server in :func:`genrelib.augment.die_with_parent`), down too."""

from .augment import die_with_parent

die_with_parent()
