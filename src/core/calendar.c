#include "api.h"
#include "platform.h"

/* ==== calendar: proleptic Gregorian dates ====
   Times in data files (CF "hours since 1900-01-01", the SDO index's
   timestamps) become Unix time here, as numpy's datetime64 counts them. */

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's days_from_civil). */
AUR__MAYBE_UNUSED static int64_t aur__days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400, yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1, doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* A time as pandas prints it ("2014-01-07 15:00:00"), for messages. */
AUR__MAYBE_UNUSED static const char *aur__format_time(int64_t ns, char *buf, size_t size)
{
    int64_t s = ns / 1000000000LL - (ns % 1000000000LL < 0), days = s / 86400 - (s % 86400 < 0), rest = s - days * 86400;
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097, doe = z - era * 146097; /* Hinnant's civil_from_days */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365, doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1), m = (int)(mp < 10 ? mp + 3 : mp - 9);
    snprintf(buf, size, "%04lld-%02d-%02d %02d:%02d:%02d", (long long)(yoe + era * 400 + (m <= 2)) % 100000, m % 100, d % 100,
             (int)(rest / 3600) % 100, (int)(rest / 60 % 60), (int)(rest % 60));
    return buf;
}
