"""The studio: character pictures made in the app (image jobs, styles, the gallery, control and
post-processing, safety)."""
