"""Config sections, one module per area; each owner extends its own section.

Every section is a frozen dataclass built by `appliance.validate.build`, so each field
declares its type, default, range/choices and a help line.
"""
