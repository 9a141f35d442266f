/* wf-water: the water-resources adapter (docs/feeds/water.md). */
#include "water.h"

int main(int argc, char **argv)
{
	return wf_adapter_main(argc, argv, &wf_water_ops);
}
