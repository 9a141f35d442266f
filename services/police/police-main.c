/* wf-police: the public-security adapter (docs/feeds/police.md). */
#include "police.h"

int main(int argc, char **argv)
{
	return wf_adapter_main(argc, argv, &wf_police_ops);
}
