"""ISO 4217: the currencies a bank may write on a statement, and how many decimals each has.

The ledger's own assets (engine.money) are a few; a bank account's statement can be in any
active currency, and its amounts are read into minor units at that currency's exponent (JPY 0,
EUR 2, KWD 3, CLF 4). Withdrawn codes that statements still carry (HRK, SLL) are kept so old
files read. Funds, metals and testing codes (XAU, XTS, XXX) have no minor unit and are not here.
"""

from __future__ import annotations

_EXPONENT_0 = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_EXPONENT_3 = "BHD IQD JOD KWD LYD OMR TND"
_EXPONENT_4 = "CLF UYW"
_EXPONENT_2 = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP"
    " BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR"
    " FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IRR JMD KES KGS KHR"
    " KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR"
    " MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK"
    " SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN"
    " UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG ZWL"
)

EXPONENTS: dict[str, int] = {
    code: exponent
    for exponent, codes in ((0, _EXPONENT_0), (2, _EXPONENT_2), (3, _EXPONENT_3), (4, _EXPONENT_4))
    for code in codes.split()
}


def exponent(code: str) -> int | None:
    """The number of decimals of an ISO 4217 currency, or None for a code that is not one."""
    return EXPONENTS.get(code)
