"""The public schedule, offering and location pages, and the iCal feeds."""
