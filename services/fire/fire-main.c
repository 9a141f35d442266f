/* wf-fire: the fire and forestry adapter (docs/feeds/fire.md). */
#include "fire.h"

int main(int argc, char **argv)
{
	return wf_adapter_main(argc, argv, &wf_fire_ops);
}
