"""The studio: image jobs, styles, the gallery, control and post-processing of pictures (issue 15)."""
