/* main.c: entry point of the `shoal` command. */
#include "config.h"
#include <stdio.h>
int main(void)
{
	puts("shoal");
	return 0;
}
