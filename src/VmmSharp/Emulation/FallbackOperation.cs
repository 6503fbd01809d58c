namespace VmmSharp.Emulation;

/// <summary>What the fallback does with a decoded instruction.</summary>
public enum FallbackOperation
{
    /// <summary>Not one the fallback emulates: the VMM reports the emulation failure.</summary>
    Unsupported,

    /// <summary><c>int3</c>, <c>int n</c>, <c>into</c>, <c>int1</c>: the event delivered through the guest's IDT.</summary>
    SoftwareInterrupt,

    /// <summary><c>cmpxchg16b</c>: a 16-byte compare-and-exchange, atomic with respect to the other vCPUs.</summary>
    CompareExchange16,

    /// <summary><c>verw</c>: ZF set if the selector names a segment writable at the current privilege.</summary>
    VerifyWrite,

    /// <summary><c>fwait</c>, <c>fnclex</c>, <c>emms</c>: x87 control as the x87 state says.</summary>
    X87Control,

    /// <summary><c>ldmxcsr</c>, <c>stmxcsr</c> (and their VEX forms).</summary>
    Mxcsr,

    /// <summary><c>xgetbv</c>: XCR0.</summary>
    GetExtendedControl,

    /// <summary>The <c>xsave</c> family: saving the state components XCR0 and EDX:EAX select.</summary>
    ExtendedStateSave,

    /// <summary>The <c>xrstor</c> family: restoring them.</summary>
    ExtendedStateRestore,

    /// <summary><c>clwb</c>, <c>clflushopt</c>: a cache-line write-back, a no-op for the VMM once the address checks pass.</summary>
    CacheLineWriteBack,

    /// <summary>An SSE/AVX load or store between a vector register and memory (RAM or MMIO).</summary>
    VectorMove,
}
