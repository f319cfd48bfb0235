"""The studio: character pictures made on this machine (image jobs, styles, gallery, safety)."""
