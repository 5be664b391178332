from analyzer.hosts import display_names, host_key


def test_host_key_spellings_of_one_machine() -> None:
    assert host_key("exch01.contoso.local") == host_key("\\\\EXCH01") == host_key("Exch01") == "EXCH01"
    assert host_key("10.0.100.32") == "10.0.100.32"
    assert host_key(None) is None and host_key("  ") is None and host_key(float("nan")) is None


def test_display_names_prefer_fqdn_and_dedupe() -> None:
    assert display_names(["EXCH01", "EXCH01.contoso.local", "mom01", "\\\\EXCH01", None]) == \
        ["EXCH01.contoso.local", "mom01"]
