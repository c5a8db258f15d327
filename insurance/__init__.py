"""Medical-insurance platform adapters (医保); ``insurance/nhsa`` is the national platform."""
