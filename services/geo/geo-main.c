/* wf-geo: the geological-hazard adapter (docs/feeds/geo.md). */
#include "geo.h"

int main(int argc, char **argv)
{
	return wf_adapter_main(argc, argv, &wf_geo_ops);
}
