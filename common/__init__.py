"""backbone-profile: every measurement is written once, here."""
