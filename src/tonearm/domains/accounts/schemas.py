"""Request bodies for the accounts API."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class SignUp(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)
    display_name: str = Field(max_length=200)
    birth_date: dt.date | None = None
    country: str | None = Field(None, pattern=r"^[A-Z]{2}$")


class PasswordChange(BaseModel):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)
