/* transfer.h: constants shared by the transfer library (BEP 3, BEP 52). */
#ifndef SHOAL_TRANSFER_H
#define SHOAL_TRANSFER_H

/* BEP 52: merkle leaves and wire requests are 16 KiB blocks. */
#define XFER_BLOCK_SIZE 16384u

#endif
