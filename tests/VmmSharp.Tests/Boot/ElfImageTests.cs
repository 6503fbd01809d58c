using VmmSharp.Boot;
using VmmSharp.Memory;
using Xunit;

namespace VmmSharp.Tests.Boot;

public class ElfImageTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void SegmentsLoadAtTheirPhysicalAddressWithTheBssZeroed(bool is64)
    {
        byte[] text = TestImages.Pattern(0x1234);
        byte[] image = new ElfBuilder(is64).Load(0x200000, text, memSize: 0x3000, vaddr: 0xC0200000).Build();
        using GuestMemory memory = BootTestMemory.Ram(8);
        memory.Fill(0x200000, 0x4000, 0xff);
        (ulong start, ulong end) = ElfImage.Parse(image).LoadSegments(memory, image);
        Assert.Equal((0x200000UL, 0x203000UL), (start, end));
        Assert.Equal(text, memory.ReadBytes(0x200000, text.Length));
        Assert.All(memory.ReadBytes(0x201234, 0x3000 - 0x1234), b => Assert.Equal(0, b));
        Assert.Equal(0xff, memory.Read<byte>(0x203000));
    }

    [Fact]
    public void AVirtualEntryInAnExecutableSegmentIsTranslatedToPhysical()
    {
        byte[] image = new ElfBuilder(is64: false) { Entry = 0xC0200010 }.Load(0x200000, TestImages.Pattern(0x100), vaddr: 0xC0200000).Build();
        Assert.Equal(0x200010UL, ElfImage.Parse(image).PhysicalEntry());
    }

    [Fact]
    public void ASegmentBeyondRamIsRefusedWithWhereRamEnds()
    {
        byte[] image = new ElfBuilder().Load(0x700000, TestImages.Pattern(0x100), memSize: 0x200000).Build();
        using GuestMemory memory = BootTestMemory.Ram(8);
        InvalidKernelImageException e = Assert.Throws<InvalidKernelImageException>(() => ElfImage.Parse(image).LoadSegments(memory, image));
        Assert.Contains("ELF segment 0 needs 0x200000 bytes at 0x700000 but guest RAM ends at 0x800000", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ASegmentInTheMmioHoleIsRefused()
    {
        byte[] image = new ElfBuilder().Load(0xD000_0000, TestImages.Pattern(0x100)).Build();
        using GuestMemory memory = BootTestMemory.Ram(8);
        InvalidKernelImageException e = Assert.Throws<InvalidKernelImageException>(() => ElfImage.Parse(image).LoadSegments(memory, image));
        Assert.Contains("no guest RAM at 0xd0000000", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ASegmentBelowOneMiBIsRefused()
    {
        byte[] image = new ElfBuilder().Load(0x8000, TestImages.Pattern(0x100)).Build();
        using GuestMemory memory = BootTestMemory.Ram(8);
        InvalidKernelImageException e = Assert.Throws<InvalidKernelImageException>(() => ElfImage.Parse(image).LoadSegments(memory, image));
        Assert.Contains("0x8000", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BigEndianIsRefused()
    {
        byte[] image = new ElfBuilder { DataEncoding = 2 }.Load(0x200000, TestImages.Pattern(16)).Build();
        InvalidKernelImageException e = Assert.Throws<InvalidKernelImageException>(() => ElfImage.Parse(image));
        Assert.Contains("data encoding 2", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ANonX86MachineIsRefused()
    {
        byte[] image = new ElfBuilder { Machine = 183 }.Load(0x200000, TestImages.Pattern(16)).Build();
        InvalidKernelImageException e = Assert.Throws<InvalidKernelImageException>(() => ElfImage.Parse(image));
        Assert.Contains("machine 183", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AProgramHeaderTablePastTheEndIsTruncated()
    {
        byte[] image = new ElfBuilder().Load(0x200000, TestImages.Pattern(16)).Build();
        image[32] = 0xf0; // e_phoff far beyond the file
        InvalidKernelImageException e = Assert.Throws<InvalidKernelImageException>(() => ElfImage.Parse(image));
        Assert.Contains("program header 0 at 0xf0", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AHugeOffsetDoesNotWrapPastTheCheck()
    {
        byte[] image = new ElfBuilder().Load(0x200000, TestImages.Pattern(16)).Build();
        BitConverter.GetBytes(ulong.MaxValue - 4).CopyTo(image, 64 + 8); // p_offset
        InvalidKernelImageException e = Assert.Throws<InvalidKernelImageException>(() => ElfImage.Parse(image));
        Assert.Contains("truncated: ELF program header 0", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AFileSizeLargerThanTheMemorySizeIsRefused()
    {
        byte[] image = new ElfBuilder().Load(0x200000, TestImages.Pattern(32)).Build();
        BitConverter.GetBytes(16UL).CopyTo(image, 64 + 40); // p_memsz
        InvalidKernelImageException e = Assert.Throws<InvalidKernelImageException>(() => ElfImage.Parse(image));
        Assert.Contains("file size of 0x20 bytes, larger than its memory size of 0x10", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void APvhNoteRunningPastItsSegmentIsTruncated()
    {
        byte[] note = TestImages.PvhNote(0x1000000);
        note[4] = 0x40; // descsz beyond the segment
        byte[] image = new ElfBuilder().Load(0x1000000, TestImages.Pattern(16)).Notes(note).Build();
        InvalidKernelImageException e = Assert.Throws<InvalidKernelImageException>(() => ElfImage.Parse(image).FindPvhEntry(image));
        Assert.Contains("truncated: ELF note", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AProgramHeaderOffsetNearTwoToThe64IsRefusedAsTruncated()
    {
        // Found by fuzzing (fuzz target elf): phoff + the header size wrapped round to a small number and passed the check.
        byte[] image = new ElfBuilder().Load(0x200000, TestImages.Pattern(16)).Build();
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(32), ulong.MaxValue);
        InvalidKernelImageException e = Assert.Throws<InvalidKernelImageException>(() => ElfImage.Parse(image));
        Assert.Contains("program header 0 at 0xffffffffffffffff", e.Message, StringComparison.Ordinal);
    }
}
