"""The studies: orchestration of measurements over many models (models.py) and over
modifications of a few (modifications.py). Each writes its results through dnnmeter.results."""
