"""Surveying public archives (GEO, ArrayExpress, SRA/ENA) into :class:`SurveyResult` records."""
