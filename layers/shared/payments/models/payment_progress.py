"""Payment progress: the request and the response shape of the seed page."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class PaymentProgressRequest(BaseModel):
    """`{"concern_idx": int, "match_type"?: 1 | 2 | null}`; types are strict, never coerced."""

    model_config = ConfigDict(extra="ignore")

    concern_idx: StrictInt = Field(ge=INT64_MIN, le=INT64_MAX)
    match_type: StrictInt | None = None

    @field_validator("match_type")
    @classmethod
    def _one_or_two(cls, value: int | None) -> int | None:
        if value is not None and value not in (1, 2):
            raise ValueError("match_type must be 1 or 2")
        return value


class Name(BaseModel):
    name: str


class Honeypot(BaseModel):
    honeypot: str


class WillsonerAsker(BaseModel):
    gender: str
    age: str
    pic: str
    nickname: str


class Picture(BaseModel):
    pic: str


class WillsonerView(BaseModel):
    avg_rating: str
    idx: int
    experience: str
    introduction: str
    asker_idx: int
    status: str
    asker: WillsonerAsker
    subcategories: list[Name]
    keywords: list[Name]
    image: Picture


class TicketView(BaseModel):
    type: str
    amount: str
    idx: int


class ConcernAsker(BaseModel):
    pic: str
    nickname: str


class CategoryView(BaseModel):
    name: str


class SubcategoryView(BaseModel):
    idx: int
    name: str
    category_idx: int
    category: CategoryView


class ConcernView(BaseModel):
    time: str
    idx: int
    content: str
    wil_gender: str
    subcategory_idx: int
    asker_idx: int
    asker: ConcernAsker
    subcategory: SubcategoryView
    personalities: list[Name]
    direction: Name


class PaymentProgressData(BaseModel):
    point: Honeypot
    willsoners: list[WillsonerView]
    tickets: list[TicketView]
    concern: ConcernView
