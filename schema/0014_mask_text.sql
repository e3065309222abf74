-- Personal data typed into free text (a petition's content or address):
-- phone numbers, ID card numbers and e-mail addresses masked wherever the
-- caller's own name and phone are masked. The same five passes, in the same
-- order, as fb_text_mask_personal() in lib/fb_text.c, which the daemons use
-- on what they have already read:
--   e-mail              z***@example.com   (first character and the domain)
--   ID card (18)        110****123X        (first three, last four)
--   12+ digits (cards)  622****1234
--   mobile, +86 and single spaces or dashes between its groups allowed
--                       199****5678
--   landline with area code, (0571) 8765-… forms
--                       057****4321
--   local number, 7 or 8 digits not joined by dashes to other digits (a
--   tracking number or a date is left alone)
--                       ****4321
-- Only ASCII digits are recognised.
CREATE FUNCTION fenbo_mask_text(t text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
        regexp_replace(t,
            '([A-Za-z0-9])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)', '\1***@\2', 'g'),
            '(?<![0-9])([0-9]{3})[0-9]{11}([0-9]{3}[0-9Xx])(?![0-9])', '\1****\2', 'g'),
            '(?<![0-9])([0-9]{3})[0-9]{5,}([0-9]{4})(?![0-9])', '\1****\2', 'g'),
            '(?<![0-9])(?:\+?86[- ]?)?(1[3-9][0-9])[- ]?[0-9]{4}[- ]?([0-9]{4})(?![0-9])',
            '\1****\2', 'g'),
            '(?<![0-9])\(?(0[0-9]{2})[0-9]?\)?[- ]?[0-9]{3,4}([0-9]{4})(?![0-9])', '\1****\2', 'g'),
            '(?<![0-9]|[0-9]-)[0-9]{3,4}([0-9]{4})(?![0-9]|-[0-9])', '****\1', 'g');

-- Public Open311 shows a place no finer than a road or a community: the
-- address up to its first road word (大道, 大街, 胡同, 路, 街, 巷, 道, 弄),
-- with no digit or 号 before it, free text masked; else the community's name
-- (of the petition's region, or of its grid's community). Never the house
-- number. "滨江区幸福路88号3栋501" → "滨江区幸福路".
CREATE FUNCTION fenbo_address_road(a text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN substring(a from '^[^0-9０-９#＃号]*?(?:大道|大街|胡同|路|街(?!道)|巷|道|弄)');

CREATE FUNCTION fenbo_public_place(address text, region_code text) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN coalesce(fenbo_mask_text(fenbo_address_road(address)),
                    (SELECT CASE WHEN r.level = 5 THEN up.name ELSE r.name END
                     FROM regions r LEFT JOIN regions up ON up.code = r.parent_code
                     WHERE r.code = region_code));
