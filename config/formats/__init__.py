"""Date formats per language (FORMAT_MODULE_PATH): one unambiguous format everywhere.

Staff in Kyiv, Geneva and elsewhere read each other's records: "03/04/2022" is March
in one country and April in another, so dates are written year-month-day in every
language, and times in 24 hours. Typed dates are read in that order first; the
language's own day-first order is still accepted.
"""
