/* A stand-in for Debian's libicudata.so.72 (30 MB): ICU's own "stubdata"
 * (an empty data package), so that libxml2 -> libicuuc loads. libxml2
 * converts with ICU only for encodings iconv lacks; lgen reads UTF-8. */
#include <stdint.h>
typedef struct {
    uint16_t size, reservedWord;
    uint8_t isBigEndian, charsetFamily, sizeofUChar, reservedByte;
    uint8_t dataFormat[4], formatVersion[4], dataVersion[4];
} UDataInfo;
typedef struct {
    uint16_t headerSize;
    uint8_t magic1, magic2;
    UDataInfo info;
    char padding[8];
    uint32_t count, reserved;
    int fakeNameAndData[4];
} ICU_Data_Header;
__attribute__((visibility("default"))) const ICU_Data_Header icudt72_dat = {
    32, 0xda, 0x27,
    { sizeof(UDataInfo), 0, 0, 0 /* ASCII family */, 2, 0, { 0x54, 0x6f, 0x43, 0x50 }, { 1, 0, 0, 0 }, { 0, 0, 0, 0 } },
    { 0 }, 0, 0, { 0, 0, 0, 0 }
};
