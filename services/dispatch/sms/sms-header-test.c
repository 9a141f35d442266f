/* Compile-only: the SMS channel's headers stand alone under -pedantic. */
#include "sms.h"
#include "sms-util.h"
#include "sms.h"
