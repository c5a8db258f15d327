-- A HIS stand-in for the database-view adapter (SQLite, for tests and demos).
-- Amounts are DECIMAL(12,2) yuan (NUMERIC affinity); times are local wall-clock text
-- 'YYYY-MM-DD HH:MM:SS'. Statements are separated by a semicolon at the end of a line.

CREATE TABLE patients (
    patient_id  VARCHAR(20) PRIMARY KEY,
    name        VARCHAR(50) NOT NULL,
    gender      CHAR(1) NOT NULL,
    id_no       CHAR(18) NOT NULL UNIQUE,
    card_no     VARCHAR(20) NOT NULL UNIQUE,
    phone       VARCHAR(20)
);

CREATE TABLE visits (
    visit_no    VARCHAR(20) PRIMARY KEY,
    patient_id  VARCHAR(20) NOT NULL REFERENCES patients (patient_id),
    visit_type  CHAR(2) NOT NULL,
    dept_name   VARCHAR(50) NOT NULL,
    doctor_name VARCHAR(50),
    visit_time  DATETIME NOT NULL
);

CREATE TABLE charges (
    charge_id    VARCHAR(24) PRIMARY KEY,
    visit_no     VARCHAR(20) NOT NULL REFERENCES visits (visit_no),
    patient_id   VARCHAR(20) NOT NULL REFERENCES patients (patient_id),
    charge_type  CHAR(2) NOT NULL,
    total_amount DECIMAL(12,2) NOT NULL,
    status       CHAR(1) NOT NULL,
    create_time  DATETIME NOT NULL
);

CREATE TABLE charge_items (
    item_id     INTEGER PRIMARY KEY,
    charge_id   VARCHAR(24) NOT NULL REFERENCES charges (charge_id),
    item_code   VARCHAR(20) NOT NULL,
    item_name   VARCHAR(100) NOT NULL,
    qty         DECIMAL(10,2) NOT NULL,
    amount      DECIMAL(12,2) NOT NULL
);

CREATE TABLE pay_records (
    pay_serial       VARCHAR(24) PRIMARY KEY,
    charge_id        VARCHAR(24),
    patient_id       VARCHAR(20) NOT NULL,
    visit_no         VARCHAR(20),
    bill_type        CHAR(2) NOT NULL,
    pay_kind         CHAR(1) NOT NULL,
    amount           DECIMAL(12,2) NOT NULL,
    channel_code     VARCHAR(8) NOT NULL,
    trade_no         VARCHAR(64),
    channel_trade_no VARCHAR(64),
    refund_no        VARCHAR(64),
    operator         VARCHAR(20) NOT NULL,
    status           CHAR(1) NOT NULL,
    pay_time         DATETIME NOT NULL
);

CREATE TABLE pay_interface (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    payment_id       VARCHAR(64) NOT NULL UNIQUE,
    out_trade_no     VARCHAR(64) NOT NULL,
    charge_ids       VARCHAR(400) NOT NULL,
    patient_id       VARCHAR(20) NOT NULL,
    visit_no         VARCHAR(20),
    amount           DECIMAL(12,2) NOT NULL,
    channel_code     VARCHAR(8) NOT NULL,
    channel_trade_no VARCHAR(64),
    bill_type        CHAR(2) NOT NULL,
    operator         VARCHAR(20),
    pay_time         DATETIME NOT NULL,
    state            CHAR(1) NOT NULL DEFAULT '1',
    created_time     DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE refund_interface (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    refund_id         VARCHAR(64) NOT NULL UNIQUE,
    payment_id        VARCHAR(64) NOT NULL,
    amount            DECIMAL(12,2) NOT NULL,
    channel_code      VARCHAR(8) NOT NULL,
    channel_refund_no VARCHAR(64),
    reason            VARCHAR(200),
    refund_time       DATETIME NOT NULL,
    created_time      DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE VIEW v_pending_charges AS
SELECT c.charge_id, c.patient_id, p.name AS patient_name, p.card_no, p.id_no, c.visit_no,
       v.dept_name, v.doctor_name, c.charge_type, c.total_amount, c.create_time
FROM charges c
JOIN patients p ON p.patient_id = c.patient_id
JOIN visits v ON v.visit_no = c.visit_no
WHERE c.status = '0'
  AND NOT EXISTS (SELECT 1 FROM pay_interface i
                  WHERE ',' || i.charge_ids || ',' LIKE '%,' || c.charge_id || ',%');

CREATE VIEW v_pending_items AS
SELECT i.charge_id, i.item_id, i.item_code, i.item_name, i.qty, i.amount
FROM charge_items i
JOIN v_pending_charges c ON c.charge_id = i.charge_id;

CREATE VIEW v_daily_bill AS
SELECT r.pay_serial, r.bill_type, r.pay_kind, r.amount, r.trade_no, r.channel_trade_no, r.refund_no,
       r.patient_id, p.name AS patient_name, r.visit_no, v.dept_name, r.operator, r.channel_code,
       r.status, r.pay_time
FROM pay_records r
JOIN patients p ON p.patient_id = r.patient_id
LEFT JOIN visits v ON v.visit_no = r.visit_no;

CREATE VIEW v_pay_interface AS
SELECT payment_id, 'JS' || substr('0000000000' || id, -10, 10) AS his_serial, state, pay_time, amount
FROM pay_interface;

CREATE VIEW v_refund_interface AS
SELECT refund_id, 'TF' || substr('0000000000' || id, -10, 10) AS his_serial, refund_time, amount
FROM refund_interface;
